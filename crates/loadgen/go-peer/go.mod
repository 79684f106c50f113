module sidecar-kit.example/go-peer

go 1.21
