module github.com/restylink-replica/beaconcfg

go 1.21
