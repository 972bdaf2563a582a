module github.com/restylink-replica/stager

go 1.21

require github.com/restylink-replica/beaconcfg v0.3.1
