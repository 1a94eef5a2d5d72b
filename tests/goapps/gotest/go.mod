module grproftest/gotest

go 1.19
