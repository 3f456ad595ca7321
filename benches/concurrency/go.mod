module router/benches/concurrency

go 1.22
