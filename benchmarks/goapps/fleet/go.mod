module grprof.bench/fleet

go 1.26
