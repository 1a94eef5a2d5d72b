module grprof.test/many

go 1.19
