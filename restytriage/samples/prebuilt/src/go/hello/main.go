// A benign Go console program: it greets the names given on its command line.
package main

import (
	"fmt"
	"os"
	"strings"
)

func greeting(names []string) string {
	if len(names) == 0 {
		return "Hello, world!"
	}
	return "Hello, " + strings.Join(names, " and ") + "!"
}

func main() {
	fmt.Println(greeting(os.Args[1:]))
}
