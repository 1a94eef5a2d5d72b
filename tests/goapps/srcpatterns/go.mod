module grprof.test/srcpatterns

go 1.19
