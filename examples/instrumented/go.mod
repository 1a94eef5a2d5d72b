module example.com/instrumented

go 1.22
