package azvtpm

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"maps"

	"github.com/sigil-attestation/sigil/verifier"
)

// TDQuoteVerifier verifies a raw Intel TDX quote (signatures, PCK chain and
// collateral) and returns the claims Trustee's TDX verifier builds from it
// without an event log (quote.header, quote.body, td_attributes, tcb_status,
// …). Trailing zero padding after the signature data must be tolerated.
type TDQuoteVerifier interface {
	VerifyTDQuote(ctx context.Context, quote []byte) (map[string]any, error)
}

// TDQuoteVerifierFunc adapts a function to TDQuoteVerifier.
type TDQuoteVerifierFunc func(ctx context.Context, quote []byte) (map[string]any, error)

// VerifyTDQuote implements TDQuoteVerifier.
func (f TDQuoteVerifierFunc) VerifyTDQuote(ctx context.Context, quote []byte) (map[string]any, error) {
	return f(ctx, quote)
}

// TDXFromVerifier adapts a "tdx" verifier.Verifier (evidence
// {"quote":"<std base64>"}) to TDQuoteVerifier. Report data and init data
// are not passed (they are bound through the HCL report and the vTPM, not
// the quote); the claims of the first result are returned.
func TDXFromVerifier(v verifier.Verifier) TDQuoteVerifier {
	return TDQuoteVerifierFunc(func(ctx context.Context, quote []byte) (map[string]any, error) {
		ev, err := json.Marshal(map[string]string{"quote": base64.StdEncoding.EncodeToString(quote)})
		if err != nil {
			return nil, err
		}
		res, err := v.Verify(ctx, ev, verifier.Expected{})
		if err != nil {
			return nil, err
		}
		if len(res) == 0 {
			return nil, fmt.Errorf("tdx verifier returned no result")
		}
		return maps.Clone(res[0].Claims), nil
	})
}

// TD quote and TDREPORT offsets.
const (
	quoteHeaderSize  = 48
	tdxTEEType       = 0x81
	bodyMRTDOffset   = 136 // in the TD report body
	bodyReportData   = 520
	tdReportMRTD     = 528 // TDREPORT: REPORTMACSTRUCT (256) + TEE_TCB_INFO (239) + reserved (17) + attributes + xfam
	tdReportDataOff  = 128 // REPORTMACSTRUCT.reportdata
	minTDQuoteLength = quoteHeaderSize + 584
)

// tdQuoteFields extracts mr_td and report_data from a TD quote (v4, or v5
// with its type/size prefix before the body).
func tdQuoteFields(q []byte) (mrTD, reportData []byte, err error) {
	if len(q) < minTDQuoteLength {
		return nil, nil, fmt.Errorf("%w: %d bytes", ErrTDQuote, len(q))
	}
	version := binary.LittleEndian.Uint16(q[0:])
	tee := binary.LittleEndian.Uint32(q[4:])
	if tee != tdxTEEType {
		return nil, nil, fmt.Errorf("%w: tee type 0x%x is not TDX", ErrTDQuote, tee)
	}
	body := quoteHeaderSize
	switch version {
	case 4:
	case 5:
		body += 6
		if len(q) < body+584 {
			return nil, nil, fmt.Errorf("%w: %d bytes", ErrTDQuote, len(q))
		}
	default:
		return nil, nil, fmt.Errorf("%w: version %d", ErrTDQuote, version)
	}
	return q[body+bodyMRTDOffset : body+bodyMRTDOffset+48], q[body+bodyReportData : body+bodyReportData+64], nil
}
