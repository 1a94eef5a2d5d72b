module grprof.bench/distinct

go 1.26
