module grprof.bench/shapes

go 1.26
