module grproftest/pii

go 1.22
