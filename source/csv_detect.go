package source

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Encodings, as FileInfo.Encoding reports them.
const (
	encUTF8        = "utf-8"
	encUTF8BOM     = "utf-8-bom"
	encWindows1252 = "windows-1252"
)

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

const (
	scanChunk = 64 << 10
	headSize  = 64 << 10 // the start of a file, kept to say what it looks like
)

// scanResult is what one pass over a whole file tells before any parsing:
// its hash, and whether and how its bytes can be text.
type scanResult struct {
	size        int64
	sha256      string
	head        []byte
	nulOffset   int64 // first NUL byte, -1 if none
	invalidUTF8 int64 // offset of the first invalid UTF-8 sequence, -1 if none
	invalidLine int   // its line
	// utf8Line is the line of the first valid multi-byte UTF-8 character
	// (0 if none): with invalid UTF-8 elsewhere, the file mixes charsets.
	utf8Line int
	// unclosedQuote is the first line of a quoted field still open at the
	// end of the file, when it spans lines (0 if none): everything after its
	// opening quote would be swallowed into one field.
	unclosedQuote int
	lastLine      int
	// crOnly: the file ends its lines with a bare CR (classic Mac OS),
	// read as if each were a LF (see crToLF)
	crOnly bool
}

// scanFile reads the whole file once: SHA-256, NUL bytes and UTF-8 validity.
// It holds one chunk at a time. With crOnly the file's bare CRs are read as
// LFs (the hash is still of the file's own bytes), so that lines are counted
// as the records will be read.
func scanFile(ctx context.Context, r io.Reader, crOnly bool) (scanResult, error) {
	res := scanResult{nulOffset: -1, invalidUTF8: -1, crOnly: crOnly}
	h := sha256.New()
	r = io.TeeReader(r, h)
	if crOnly {
		r = newCRToLF(r)
	}
	// buf keeps 3 bytes of headroom before the chunk, where the incomplete
	// UTF-8 sequence at the end of the previous chunk is carried over.
	buf := make([]byte, 3+scanChunk)
	carry := 0
	var offset int64 // of buf[3] in the file
	lines := 1       // line at the start of the current chunk
	// The same state machine as the limiter finds a quote that is never
	// closed; quotes, commas and newlines are the same bytes in both charsets.
	lex := newLexer()
	var lastByte byte
	for {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		n, err := io.ReadFull(r, buf[3:])
		chunk := buf[3 : 3+n]
		if len(res.head) < headSize {
			res.head = append(res.head, chunk[:min(n, headSize-len(res.head))]...)
		}
		if res.nulOffset < 0 {
			if i := bytes.IndexByte(chunk, 0); i >= 0 {
				res.nulOffset = offset + int64(i)
			}
		}
		if res.invalidUTF8 < 0 {
			seg := buf[3-carry : 3+n]
			end := len(seg)
			if err == nil {
				end -= incompleteTail(seg)
			}
			valid := seg[:end]
			if !utf8.Valid(valid) {
				i := firstInvalidUTF8(valid)
				res.invalidUTF8 = offset - int64(carry) + int64(i)
				// the carried bytes hold no newline, so counting in seg is right
				res.invalidLine = lines + bytes.Count(seg[:i], []byte{'\n'})
				valid = seg[:i]
			}
			// in valid UTF-8 any byte >= 0x80 is part of a multi-byte character
			if res.utf8Line == 0 && hasHighByte(valid) {
				i := bytes.IndexFunc(valid, func(r rune) bool { return r >= 0x80 })
				res.utf8Line = lines + bytes.Count(seg[:i], []byte{'\n'})
			}
			carry = copy(buf[3-(len(seg)-end):3], seg[end:])
		}
		if res.invalidUTF8 >= 0 && res.utf8Line == 0 {
			// past the first invalid byte, look for a valid multi-byte
			// character (one split across chunks is missed: this is a heuristic)
			from := 0
			if res.invalidUTF8 >= offset {
				from = int(res.invalidUTF8-offset) + 1
			}
			if i := firstMultibyte(chunk[from:]); i >= 0 {
				res.utf8Line = lines + bytes.Count(chunk[:from+i], []byte{'\n'})
			}
		}
		lex.advance(chunk)
		lines += bytes.Count(chunk, []byte{'\n'})
		if n > 0 {
			lastByte = chunk[n-1]
		}
		offset += int64(n)
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return res, err
		}
	}
	res.size = offset
	res.lastLine = lines
	if offset > 0 && lastByte == '\n' {
		res.lastLine-- // the line after a final newline is empty
	}
	if lex.recStart > 0 && lex.state == quoted && lex.line > lex.recStart {
		res.unclosedQuote = lex.recStart
	}
	res.sha256 = hex.EncodeToString(h.Sum(nil))
	return res, nil
}

// crLineEndings reports whether the first line of head (the start of a
// file) ends with a bare CR: classic Mac OS line endings, as Excel for Mac's
// "CSV (Macintosh)" writes them. ServiceNow never does; read as they are,
// csv.Reader takes the whole file for one line (CR is data to it).
func crLineEndings(head []byte) bool {
	i := bytes.IndexAny(head, "\r\n")
	return i >= 0 && head[i] == '\r' && i+1 < len(head) && head[i+1] != '\n'
}

// crToLF turns each bare CR (one not followed by a LF) into a LF, byte for
// byte, so that offsets stay those of the file; CRLF is left alone.
type crToLF struct{ r *bufio.Reader }

func newCRToLF(r io.Reader) crToLF {
	if br, ok := r.(*bufio.Reader); ok {
		return crToLF{br}
	}
	return crToLF{bufio.NewReaderSize(r, scanChunk)}
}

func (c crToLF) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	for i := 0; i < n; {
		j := bytes.IndexByte(p[i:n], '\r')
		if j < 0 {
			break
		}
		i += j
		if i+1 < n {
			if p[i+1] != '\n' {
				p[i] = '\n'
			}
		} else if next, perr := c.r.Peek(1); perr != nil || next[0] != '\n' {
			// the CR ends what was read: the next byte decides (at the end
			// of the file, or on an I/O error that the next Read returns,
			// the CR ends a line)
			p[i] = '\n'
		}
		i++
	}
	return n, err
}

// incompleteTail is the length of a UTF-8 sequence cut off at the end of b
// (0 to 3 bytes), to be checked with the next chunk.
func incompleteTail(b []byte) int {
	for i := 1; i <= 3 && i <= len(b); i++ {
		c := b[len(b)-i]
		if c < 0x80 {
			return 0
		}
		if c >= 0xC0 { // a lead byte: is its sequence complete?
			need := 2
			if c >= 0xF0 {
				need = 4
			} else if c >= 0xE0 {
				need = 3
			}
			if need > i {
				return i
			}
			return 0
		}
	}
	return 0
}

// hasHighByte reports whether b holds a byte >= 0x80, eight bytes at a time.
func hasHighByte(b []byte) bool {
	for len(b) >= 8 {
		if binary.LittleEndian.Uint64(b)&0x8080808080808080 != 0 {
			return true
		}
		b = b[8:]
	}
	for _, c := range b {
		if c >= 0x80 {
			return true
		}
	}
	return false
}

// firstMultibyte is the index of the first valid multi-byte UTF-8 character
// in b, or -1.
func firstMultibyte(b []byte) int {
	for i := 0; i < len(b); i++ {
		if c := b[i]; c >= 0xC2 && c <= 0xF4 {
			if r, size := utf8.DecodeRune(b[i:]); size > 1 && r != utf8.RuneError {
				return i
			}
		}
	}
	return -1
}

func firstInvalidUTF8(b []byte) int {
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 {
			return i
		}
		i += size
	}
	return len(b)
}

// windows1252Undefined are the five bytes Windows-1252 leaves unassigned.
func windows1252Undefined(c byte) bool {
	return c == 0x81 || c == 0x8D || c == 0x8F || c == 0x90 || c == 0x9D
}

// firstNot1252 finds the first byte that is not Windows-1252 text (an
// unassigned byte); it returns -1 and 0 when every byte fits.
func firstNot1252(ctx context.Context, r io.Reader) (offset int64, line int, err error) {
	buf := make([]byte, scanChunk)
	line = 1
	for {
		if err := ctx.Err(); err != nil {
			return -1, 0, err
		}
		n, rerr := r.Read(buf)
		for i, c := range buf[:n] {
			if c == '\n' {
				line++
			} else if windows1252Undefined(c) {
				return offset + int64(i), line, nil
			}
		}
		offset += int64(n)
		if rerr == io.EOF {
			return -1, 0, nil
		}
		if rerr != nil {
			return -1, 0, rerr
		}
	}
}

// looksLike says what a file that is not a CSV export looks like, from its
// first bytes, or "" when it may be CSV text.
func looksLike(s scanResult) string {
	head := s.head
	switch {
	case s.size == 0:
		return "an empty file (0 bytes)"
	case bytes.HasPrefix(head, []byte("PK\x03\x04")):
		return "a ZIP archive, probably an Excel .xlsx workbook saved under a .csv name; export the list as CSV instead"
	case bytes.HasPrefix(head, []byte{0x1F, 0x8B}):
		return "gzip-compressed data; decompress it first"
	case bytes.HasPrefix(head, []byte("%PDF")):
		return "a PDF document, not a CSV export"
	case bytes.HasPrefix(head, []byte{0xFF, 0xFE}), bytes.HasPrefix(head, []byte{0xFE, 0xFF}):
		return "UTF-16 text (Excel's \"Unicode Text\"); export the list as CSV in UTF-8 or Windows-1252"
	case s.nulOffset >= 0:
		return fmt.Sprintf("binary data, not text (a NUL byte at offset %d)", s.nulOffset)
	case controlBytes(head)*100 > len(head):
		return "binary data, not text (control characters)"
	}
	text := bytes.TrimLeft(bytes.TrimPrefix(head, utf8BOM), " \t\r\n")
	if s.size <= int64(len(head)) && len(text) == 0 {
		return "an empty file (only whitespace)"
	}
	lower := bytes.ToLower(text[:min(len(text), 4096)])
	switch {
	case bytes.HasPrefix(lower, []byte("<!doctype html")), bytes.HasPrefix(lower, []byte("<html")),
		bytes.HasPrefix(lower, []byte("<")) && bytes.Contains(lower, []byte("<html")):
		desc := "an HTML page, not a CSV export"
		if t := htmlTitle(text); t != "" {
			desc += fmt.Sprintf(" (title %q)", t)
		}
		return desc + "; ServiceNow answers with its login page when the session has expired: log in again and re-export"
	case bytes.HasPrefix(lower, []byte("<?xml")):
		return "an XML document (ServiceNow's XML export?), not a CSV export"
	case bytes.HasPrefix(lower, []byte("<")):
		return "markup (it starts with '<'), not a CSV export"
	case bytes.HasPrefix(lower, []byte("{")), bytes.HasPrefix(lower, []byte("[")):
		return "JSON (ServiceNow's JSON export?), not a CSV export"
	}
	return ""
}

// controlBytes counts control characters other than tab, CR, LF and form feed.
func controlBytes(b []byte) int {
	n := 0
	for _, c := range b {
		if c < 0x20 && c != '\t' && c != '\r' && c != '\n' && c != '\f' {
			n++
		}
	}
	return n
}

var titleRE = regexp.MustCompile(`(?is)<title[^>]*>(.*?)</title>`)

func htmlTitle(b []byte) string {
	m := titleRE.FindSubmatch(b)
	if m == nil {
		return ""
	}
	t := strings.Join(strings.Fields(string(m[1])), " ")
	if !utf8.ValidString(t) {
		t = strings.ToValidUTF8(t, "?")
	}
	if len(t) > 80 {
		t = t[:77] + "..."
	}
	return t
}

// chooseEncoding decides how to decode a file: forced, or detected (UTF-8 if
// every byte is valid UTF-8, else Windows-1252 if every byte is assigned in
// it). It returns a refusal reason when neither fits.
func chooseEncoding(ctx context.Context, f *os.File, s scanResult, forced string) (enc, refusal string, err error) {
	bom := bytes.HasPrefix(s.head, utf8BOM)
	check1252 := func() (string, error) {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return "", err
		}
		var r io.Reader = f
		if s.crOnly {
			r = newCRToLF(f) // for the line number
		}
		off, line, err := firstNot1252(ctx, r)
		if err != nil || off < 0 {
			return "", err
		}
		return fmt.Sprintf("line %d (byte offset %d) holds byte 0x%02X, which is not valid UTF-8 and not a Windows-1252 character either",
			line, off, s.head0(f, off)), nil
	}
	switch forced {
	case encUTF8:
		if s.invalidUTF8 >= 0 {
			return "", fmt.Sprintf("invalid UTF-8 at line %d (byte offset %d), but UTF-8 was forced; "+
				"ServiceNow exports Windows-1252 by default: use encoding windows-1252 or let it be detected",
				s.invalidLine, s.invalidUTF8), nil
		}
		if bom {
			return encUTF8BOM, "", nil
		}
		return encUTF8, "", nil
	case encWindows1252:
		if bom {
			return "", "the file starts with a UTF-8 byte-order mark, but windows-1252 was forced; use utf-8 or let it be detected", nil
		}
		why, err := check1252()
		if err != nil {
			return "", "", err
		}
		if why != "" {
			return "", why + " (windows-1252 was forced)", nil
		}
		return encWindows1252, "", nil
	}
	if s.invalidUTF8 < 0 {
		if bom {
			return encUTF8BOM, "", nil
		}
		return encUTF8, "", nil
	}
	if bom {
		return "", fmt.Sprintf("the file starts with a UTF-8 byte-order mark but holds invalid UTF-8 at line %d (byte offset %d)",
			s.invalidLine, s.invalidUTF8), nil
	}
	if s.utf8Line > 0 {
		// Decoding it all as Windows-1252 would garble the UTF-8 names
		// ("JosÃ©"), and those would reach Duo.
		return "", fmt.Sprintf("mixed charsets: line %d holds UTF-8 text but line %d (byte offset %d) is not UTF-8; "+
			"re-export the list in one charset, or force one with the encoding option",
			s.utf8Line, s.invalidLine, s.invalidUTF8), nil
	}
	why, err := check1252()
	if err != nil {
		return "", "", err
	}
	if why != "" {
		return "", "invalid text: " + why + "; set the export charset (glide.export.csv.charset) or the encoding option", nil
	}
	return encWindows1252, "", nil
}

// head0 returns the byte at off, from the head when it is there, else from
// the file (only used to word a refusal).
func (s scanResult) head0(f *os.File, off int64) byte {
	if off < int64(len(s.head)) {
		return s.head[off]
	}
	var b [1]byte
	if _, err := f.ReadAt(b[:], off); err != nil {
		return 0
	}
	return b[0]
}
