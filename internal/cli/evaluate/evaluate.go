// Package evaluate implements `sigil evaluate`: run a verifier and the
// appraisal policy offline, without a server, and print what the policy saw
// and why it decided what it did.
package evaluate

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/sigil-attestation/sigil/attestation"
	"github.com/sigil-attestation/sigil/ear"
	"github.com/sigil-attestation/sigil/internal/app"
	"github.com/sigil-attestation/sigil/rvps"
	"github.com/sigil-attestation/sigil/storage"
	"github.com/sigil-attestation/sigil/storage/memory"
	"github.com/sigil-attestation/sigil/verifier"
)

const help = `Usage: sigil evaluate --tee TEE --evidence FILE [flags]

Verifies evidence and runs the appraisal policy offline, then prints JSON:
for every submodule the claims the policy saw (its input), the trust vector,
the status, and which rule set each trust claim.

Flags:
  --tee TEE                    tee of the evidence (sample, sampledevice, ...)
  --evidence FILE              evidence JSON as the attester produced it ("-" = stdin)
  --additional-evidence FILE   composite additional evidence (JSON object tee → evidence)
  --runtime-data-raw HEX       report data to compare as-is (hex)
  --runtime-data-json FILE     structured runtime data (hashed as RFC 8785 JSON)
  --hash-algorithm ALG         hash for --runtime-data-json (sha256, sha384, sha512; default sha384)
  --init-data FILE             init-data TOML
  --policy FILE                Rego policy used for the primary evidence's class (default: built-in default_<class>)
  --reference-values FILE      JSON object name → value, or an RVPS register message
  --now RFC3339                evaluation time for certificates and collateral (default: now)
  --cert-now RFC3339           clock for the certificates that sign collateral (default --now)
  --collateral-dir DIR         offline collateral: Intel PCS documents (verifier/tdx/pcs layout),
                               AMD VCEKs (verifier/snp/kds offline-store layout) and NVIDIA RIMs (<id>.xml)
  --rim-dir DIR                same as --collateral-dir (NVIDIA RIMs)
  --no-network                 use only --collateral-dir and the evidence, never vendor services
  --offline                    missing TCB collateral gives tcb_status "Unknown", unreachable NVIDIA RIM
                               or OCSP services are recorded in the device claims, instead of failing;
                               signatures, chains, FWIDs, nonces and bindings are still checked
  --token                      also print the EAR token that would be issued

Exit status: 0 when the evidence verified (whatever the policy concluded),
1 when it is not genuine or not bound to the runtime data, 2 on usage errors.
`

// Main runs the command.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	fs := flag.NewFlagSet("evaluate", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	tee := fs.String("tee", "", "")
	evidence := fs.String("evidence", "", "")
	additional := fs.String("additional-evidence", "", "")
	rdRaw := fs.String("runtime-data-raw", "", "")
	rdJSON := fs.String("runtime-data-json", "", "")
	hashAlg := fs.String("hash-algorithm", "sha384", "")
	initData := fs.String("init-data", "", "")
	policyFile := fs.String("policy", "", "")
	rvFile := fs.String("reference-values", "", "")
	nowStr := fs.String("now", "", "")
	showToken := fs.Bool("token", false, "")
	collateralDir := fs.String("collateral-dir", "", "")
	fs.StringVar(collateralDir, "rim-dir", "", "")
	certNowStr := fs.String("cert-now", "", "")
	noNetwork := fs.Bool("no-network", false, "")
	offline := fs.Bool("offline", false, "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, help)
			return 0
		}
		fmt.Fprintf(stderr, "sigil evaluate: %v\n\n%s", err, help)
		return 2
	}
	if *tee == "" || *evidence == "" || fs.NArg() > 0 {
		fmt.Fprintf(stderr, "sigil evaluate: --tee and --evidence are required\n\n%s", help)
		return 2
	}
	if *rdRaw != "" && *rdJSON != "" {
		fmt.Fprintln(stderr, "sigil evaluate: --runtime-data-raw and --runtime-data-json are exclusive")
		return 2
	}
	opts := options{
		tee: *tee, evidence: *evidence, additional: *additional, rdRaw: *rdRaw, rdJSON: *rdJSON,
		hashAlg: *hashAlg, initData: *initData, policy: *policyFile, referenceValues: *rvFile,
		now: *nowStr, token: *showToken, collateralDir: *collateralDir, certNow: *certNowStr, noNetwork: *noNetwork, offline: *offline,
	}
	out, err := evaluate(ctx, opts)
	if err != nil {
		fmt.Fprintf(stderr, "sigil evaluate: %v\n", err)
		var ue usageError
		if errors.As(err, &ue) {
			return 2
		}
		return 1
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(out); err != nil {
		fmt.Fprintf(stderr, "sigil evaluate: %v\n", err)
		return 1
	}
	return 0
}

type usageError struct{ error }

type options struct {
	tee, evidence, additional, rdRaw, rdJSON, hashAlg, initData, policy, referenceValues, now string
	collateralDir, certNow                                                                    string
	token, noNetwork, offline                                                                 bool
}

// Output is what `sigil evaluate` prints.
type Output struct {
	Submods []attestation.Appraisal `json:"submods"`
	Token   string                  `json:"token,omitempty"`
}

func readFile(name string) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(io.LimitReader(os.Stdin, 64<<20))
	}
	return os.ReadFile(name)
}

func evaluate(ctx context.Context, o options) (*Output, error) {
	now := time.Now
	if o.now != "" {
		t, err := time.Parse(time.RFC3339, o.now)
		if err != nil {
			return nil, usageError{fmt.Errorf("--now: %w", err)}
		}
		now = func() time.Time { return t }
	}
	var certNow func() time.Time
	if o.certNow != "" {
		t, err := time.Parse(time.RFC3339, o.certNow)
		if err != nil {
			return nil, usageError{fmt.Errorf("--cert-now: %w", err)}
		}
		certNow = func() time.Time { return t }
	}
	ev, err := readFile(o.evidence)
	if err != nil {
		return nil, usageError{err}
	}
	req := &attestation.Request{Tee: o.tee, Evidence: ev, HashAlgorithm: o.hashAlg, Explain: true, AllowDevicePrimary: true}
	if o.additional != "" {
		b, err := readFile(o.additional)
		if err != nil {
			return nil, usageError{err}
		}
		req.AdditionalEvidence = strings.TrimSpace(string(b))
	}
	switch {
	case o.rdRaw != "":
		raw, err := hex.DecodeString(strings.TrimPrefix(o.rdRaw, "0x"))
		if err != nil {
			return nil, usageError{fmt.Errorf("--runtime-data-raw: %w", err)}
		}
		req.RuntimeData.Raw = raw
	case o.rdJSON != "":
		b, err := readFile(o.rdJSON)
		if err != nil {
			return nil, usageError{err}
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, usageError{fmt.Errorf("--runtime-data-json: %w", err)}
		}
		req.RuntimeData.Primary = m
	}
	if o.initData != "" {
		if req.InitDataTOML, err = readFile(o.initData); err != nil {
			return nil, usageError{err}
		}
	}

	backend := memory.New()
	defer backend.Close()
	policies, err := backend.Namespace(ctx, storage.NamespaceASPolicy)
	if err != nil {
		return nil, err
	}
	rvStore, err := backend.Namespace(ctx, storage.NamespaceReferenceValue)
	if err != nil {
		return nil, err
	}
	rv := rvps.New(rvStore, rvps.Options{Now: now})
	if o.referenceValues != "" {
		if err := loadReferenceValues(ctx, rv, o.referenceValues); err != nil {
			return nil, usageError{err}
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	broker, err := ear.NewBroker(ear.BrokerConfig{Signer: key, Now: now, Build: "sigil evaluate"})
	if err != nil {
		return nil, err
	}
	verifiers, err := app.Verifiers(app.VerifierOptions{
		CollateralDir: o.collateralDir, NoNetwork: o.noNetwork, Offline: o.offline, Now: now, CertNow: certNow,
		StrictDevices: true,
		HTTPClient:    &http.Client{Timeout: 30 * time.Second},
	})
	if err != nil {
		return nil, err
	}
	svc, err := attestation.New(ctx, attestation.Config{
		Verifiers: verifiers, Policies: policies, ReferenceValues: rv, Broker: broker, VerboseToken: true,
	})
	if err != nil {
		return nil, err
	}
	if _, ok := verifiers[o.tee]; !ok {
		return nil, usageError{fmt.Errorf("unknown tee %q", o.tee)}
	}
	if o.policy != "" {
		text, err := os.ReadFile(o.policy)
		if err != nil {
			return nil, usageError{err}
		}
		class, err := primaryClass(ctx, verifiers[o.tee], req)
		if err != nil {
			return nil, err
		}
		if err := svc.SetPolicyText(ctx, attestation.DefaultPolicyID+"_"+class, string(text)); err != nil {
			return nil, usageError{fmt.Errorf("--policy: %w", err)}
		}
	}
	res, err := svc.Evaluate(ctx, req)
	if err != nil {
		return nil, err
	}
	out := &Output{Submods: res.Appraisals}
	if o.token {
		out.Token = res.Token
	}
	return out, nil
}

// primaryClass finds the class of the primary evidence (to know which
// default_<class> a --policy file replaces) by running its verifier without
// binding checks; verification errors surface again, with the binding
// checks, in Evaluate.
func primaryClass(ctx context.Context, v verifier.Verifier, req *attestation.Request) (string, error) {
	res, err := v.Verify(ctx, req.Evidence, verifier.Expected{})
	if err != nil {
		return "", fmt.Errorf("%w: %s: %w", attestation.ErrEvidence, req.Tee, err)
	}
	if len(res) == 0 {
		return "", fmt.Errorf("verifier %s returned no result", req.Tee)
	}
	return res[0].Class, nil
}

func loadReferenceValues(ctx context.Context, rv *rvps.Service, file string) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(b, &probe); err != nil {
		return fmt.Errorf("--reference-values: %w", err)
	}
	if _, ok := probe["payload"]; ok {
		if _, ok := probe["type"]; ok {
			return rv.Register(ctx, b)
		}
	}
	msg, err := json.Marshal(map[string]string{
		"version": "0.1.0", "type": "sample", "payload": base64.StdEncoding.EncodeToString(b),
	})
	if err != nil {
		return err
	}
	return rv.Register(ctx, msg)
}
