//go:build wirecore_local

package capi

// The library cargo built in this repository (make build-go links lib/libwirecore.a to it) and
// the repository's header: what the tests and benchmarks use (mk/go.mk sets the tag).

/*
#cgo CFLAGS: -I${SRCDIR}/../../../../include
#cgo LDFLAGS: ${SRCDIR}/../../lib/libwirecore.a -ldl -lm -lpthread
*/
import "C"
