package duo_test

import (
	"github.com/duosync/duosync/duo"
	dsync "github.com/duosync/duosync/sync"
)

// The engine's interfaces, checked here because duo must not import sync.
var (
	_ dsync.DuoReader = (*duo.Client)(nil)
	_ dsync.DuoWriter = (*duo.Client)(nil)
)
