// Command hello prints its greeting, for testproc's tests.
package main

import "fmt"

func main() { fmt.Println("hello from a built binary") }
