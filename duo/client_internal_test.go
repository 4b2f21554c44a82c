package duo

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// The extra CA is added to duo_api_golang's pinned Duo CAs, not put in
// their place; verification stays on; the proxy comes from the environment.
func TestTransportKeepsPinnedCAsAndAddsCustomCA(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "duosync test proxy CA"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}

	for _, withCA := range []bool{false, true} {
		cfg := Config{Host: "api-test.duosecurity.com", IKey: "DIX", SKey: "s"}
		if withCA {
			cfg.CAFile = caFile
		}
		c, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		tr := c.transport.(*http.Transport)
		if tr.TLSClientConfig.InsecureSkipVerify {
			t.Fatal("TLS verification is disabled")
		}
		//lint:ignore SA1019 the pool is built from PEM, not the system's, so Subjects is complete.
		subjects := tr.TLSClientConfig.RootCAs.Subjects()
		var names []string
		for _, raw := range subjects {
			var rdn pkix.RDNSequence
			if _, err := asn1.Unmarshal(raw, &rdn); err == nil {
				var n pkix.Name
				n.FillFromRDNSequence(&rdn)
				names = append(names, n.CommonName)
			}
		}
		all := strings.Join(names, "|")
		if !strings.Contains(all, "Amazon Root CA 1") || !strings.Contains(all, "DigiCert") {
			t.Errorf("with CA %v: Duo's pinned CAs are missing: %s", withCA, all)
		}
		if got := strings.Contains(all, "duosync test proxy CA"); got != withCA {
			t.Errorf("with CA %v: custom CA present = %v", withCA, got)
		}
		if reflect.ValueOf(tr.Proxy).Pointer() != reflect.ValueOf(http.ProxyFromEnvironment).Pointer() {
			t.Error("the proxy is not taken from the environment")
		}
	}
}
