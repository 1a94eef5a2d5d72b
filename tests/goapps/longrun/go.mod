module grprof.test/longrun

go 1.26.0
