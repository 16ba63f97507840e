module github.com/wirecore/wirecore/bindings/go

go 1.26
