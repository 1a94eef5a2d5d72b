module grproftest/gatesuite

go 1.22.0

require github.com/grprof/grprof/go v0.0.0

replace github.com/grprof/grprof/go => ../../../go
