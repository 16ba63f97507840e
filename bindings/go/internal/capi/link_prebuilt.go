//go:build !wirecore_local

package capi

// A released module carries the library prebuilt (make go-vendor-lib), with the header it was
// built from: no Rust toolchain is needed to build. Only linux/amd64 is prebuilt; elsewhere,
// build the library with cargo and use -tags wirecore_local (see README.md).

/*
#cgo CFLAGS: -I${SRCDIR}/prebuilt/include
#cgo linux,amd64 LDFLAGS: ${SRCDIR}/prebuilt/linux_amd64/libwirecore.a -ldl -lm -lpthread
*/
import "C"
