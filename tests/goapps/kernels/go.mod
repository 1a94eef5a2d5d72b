module grprof.test/kernels

go 1.22
