package wirecore

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"sync"

	"github.com/wirecore/wirecore/bindings/go/internal/capi"
)

// tlsStates keeps one tls.ConnectionState per peer chain, so a connection's certificates are
// parsed once rather than per response (net/http also shares one per connection).
type tlsStates struct {
	mu sync.RWMutex
	m  map[string]tlsEntry // by the leaf certificate's DER
}

type tlsEntry struct {
	state *tls.ConnectionState
	raw   [][]byte
}

// tlsStatesMax bounds the cache; past it, it starts over.
const tlsStatesMax = 64

func (e tlsEntry) matches(in *capi.TLSInfo) bool {
	s := e.state
	if s.Version != in.Version || s.CipherSuite != in.CipherSuite ||
		s.NegotiatedProtocol != string(in.ALPN) || s.ServerName != string(in.ServerName) ||
		len(e.raw) != in.NCerts {
		return false
	}
	for i, der := range e.raw {
		if !bytes.Equal(der, in.Certs[i]) {
			return false
		}
	}
	return true
}

// state is resp.TLS for a response whose handshake is in.
func (c *tlsStates) state(in *capi.TLSInfo) *tls.ConnectionState {
	var leaf []byte
	if in.NCerts > 0 {
		leaf = in.Certs[0]
	}
	c.mu.RLock()
	e, ok := c.m[string(leaf)]
	c.mu.RUnlock()
	if ok && e.matches(in) {
		return e.state
	}
	e = tlsEntry{
		state: &tls.ConnectionState{
			Version:                    in.Version,
			HandshakeComplete:          true,
			CipherSuite:                in.CipherSuite,
			NegotiatedProtocol:         string(in.ALPN),
			NegotiatedProtocolIsMutual: true,
			ServerName:                 string(in.ServerName),
		},
		raw: make([][]byte, in.NCerts),
	}
	for i := range in.NCerts {
		e.raw[i] = bytes.Clone(in.Certs[i])
		if cert, err := x509.ParseCertificate(e.raw[i]); err == nil {
			e.state.PeerCertificates = append(e.state.PeerCertificates, cert)
		}
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= tlsStatesMax {
		c.m = make(map[string]tlsEntry)
	}
	c.m[string(leaf)] = e
	c.mu.Unlock()
	return e.state
}
