module grprof.bench/loadtarget

go 1.26
