//go:build !wirecore_local && !(linux && amd64)

package capi

// No prebuilt library for this GOOS/GOARCH: the build stops here with this name, rather than
// at the linker. Build the library with cargo and use -tags wirecore_local (see README.md).
var _ = no_prebuilt_wirecore_library_for_this_platform_build_with_tags_wirecore_local
