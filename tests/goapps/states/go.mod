module grprof.test/states

go 1.19
