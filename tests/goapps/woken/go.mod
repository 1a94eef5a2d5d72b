module grprof.test/woken

go 1.26.0
