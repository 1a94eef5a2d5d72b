module grprof.test/liars

go 1.21
