//! wirecore-ffi (being built).
