package report

import (
	"context"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// findChromium returns a headless-capable Chromium, or skips the test.
func findChromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("chromium not found (install Debian's chromium package, or set CHROMIUM=/path/to/chrome): the HTML report was not rendered")
	return ""
}

// screenshot renders an HTML file to a PNG of the given size.
func screenshot(t *testing.T, htmlPath, pngPath string, width, height int) {
	t.Helper()
	bin := findChromium(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--hide-scrollbars",
		"--user-data-dir="+filepath.Join(t.TempDir(), "profile"),
		"--screenshot="+pngPath,
		"--window-size="+strconv.Itoa(width)+","+strconv.Itoa(height),
		"file://"+htmlPath)
	cmd.WaitDelay = 5 * time.Second
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, out)
	}
}

func TestHTMLRendersInChromium(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p, err := WriteFiles(dir, sampleReport())
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "report.png")
	screenshot(t, p.HTML, out, 1200, 1600)

	f, err := os.Open(out)
	if err != nil {
		t.Fatalf("chromium wrote no screenshot: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot is not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() != 1200 || b.Dy() != 1600 {
		t.Fatalf("screenshot is %dx%d, want 1200x1600", b.Dx(), b.Dy())
	}
	if v := luminanceVariance(img); v < 50 {
		t.Errorf("screenshot looks blank (luminance variance %.1f)", v)
	}
	// The failures and blocked users are highlighted in light red.
	if n := countNear(img, 0xff, 0xeb, 0xe9); n < 200 { // sampled: one pixel in four
		t.Errorf("only %d highlighted pixels: failures are not highlighted", n)
	}
	if *update {
		data, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join("..", "docs", "report.png"), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// rgb8 reads a pixel; it takes the fast path for the image types
// image/png decodes to, since the race detector makes img.At slow.
func rgb8(img image.Image) func(x, y int) (r, g, b int) {
	switch m := img.(type) {
	case *image.RGBA:
		return func(x, y int) (int, int, int) {
			i := m.PixOffset(x, y)
			return int(m.Pix[i]), int(m.Pix[i+1]), int(m.Pix[i+2])
		}
	case *image.NRGBA:
		return func(x, y int) (int, int, int) {
			i := m.PixOffset(x, y)
			return int(m.Pix[i]), int(m.Pix[i+1]), int(m.Pix[i+2])
		}
	}
	return func(x, y int) (int, int, int) {
		r, g, b, _ := img.At(x, y).RGBA()
		return int(r >> 8), int(g >> 8), int(b >> 8)
	}
}

func luminanceVariance(img image.Image) float64 {
	at := rgb8(img)
	b := img.Bounds()
	var sum, sumSq, n float64
	for y := b.Min.Y; y < b.Max.Y; y += 2 {
		for x := b.Min.X; x < b.Max.X; x += 2 {
			r, g, bl := at(x, y)
			l := 0.299*float64(r) + 0.587*float64(g) + 0.114*float64(bl)
			sum += l
			sumSq += l * l
			n++
		}
	}
	mean := sum / n
	return sumSq/n - mean*mean
}

// countNear counts pixels (one in four) within 3 of an RGB colour.
func countNear(img image.Image, r8, g8, b8 int) int {
	at := rgb8(img)
	b := img.Bounds()
	near := func(a, want int) bool { return a-want > -4 && a-want < 4 }
	n := 0
	for y := b.Min.Y; y < b.Max.Y; y += 2 {
		for x := b.Min.X; x < b.Max.X; x += 2 {
			r, g, bl := at(x, y)
			if near(r, r8) && near(g, g8) && near(bl, b8) {
				n++
			}
		}
	}
	return n
}
