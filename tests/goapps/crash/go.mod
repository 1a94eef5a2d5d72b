module grproftest/crash

go 1.19
