// Package bench holds duosync's production-scale benchmark (issue 5):
// 100,000 Duo users, 10,000 approved requests, 20 ms of latency per call,
// measured for duosync and for a naive baseline written like the original
// per-request scripts. Everything is in the _test.go files; run it with
//
//	go test -run '^$' -bench . ./bench
//
// and see README.md for the figures and how to read them.
package bench
