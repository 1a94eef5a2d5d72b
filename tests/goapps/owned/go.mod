module grprof.test/owned

go 1.22
