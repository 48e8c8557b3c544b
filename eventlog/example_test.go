package eventlog_test

import (
	"errors"
	"fmt"
	"os"

	"github.com/sigil-attestation/sigil/eventlog"
)

func ExampleParseCCEL() {
	raw, err := os.ReadFile("testdata/CCEL_data")
	if err != nil {
		panic(err)
	}
	l, err := eventlog.ParseCCEL(raw) // the zero padding after the log is ignored
	if err != nil {
		panic(err)
	}
	rtmrs, err := l.Replay()
	if err != nil {
		panic(err)
	}
	fmt.Printf("%d events, RTMR0 %x…\n", len(l.Events()), rtmrs[0][:4])

	rtmrs[3] = append([]byte{1}, rtmrs[3][1:]...) // RTMR3 has no events: it must be zero
	err = l.VerifyRTMRs(rtmrs)
	fmt.Println(errors.Is(err, eventlog.ErrRTMRMismatch))
	// Output:
	// 5 events, RTMR0 2dc71230…
	// true
}
