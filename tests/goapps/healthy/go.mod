module grproftest/healthy

go 1.19
