module grprof.test/pileup

go 1.26.0
