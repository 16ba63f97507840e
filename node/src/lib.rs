//! wirecore-node (being built).
