module github.com/wirecore/wirecore/bench/go

go 1.26

require github.com/wirecore/wirecore/bindings/go v0.0.0

replace github.com/wirecore/wirecore/bindings/go => ../../bindings/go
