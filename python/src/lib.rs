//! wirecore-py (being built).
