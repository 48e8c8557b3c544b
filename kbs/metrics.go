package kbs

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are the KBS's Prometheus metrics, with Trustee's names, in a
// registry of their own (no global registry).
type Metrics struct {
	registry *prometheus.Registry

	httpRequests      *prometheus.CounterVec
	httpDuration      *prometheus.HistogramVec
	httpRequestSize   *prometheus.HistogramVec
	httpResponseSize  *prometheus.HistogramVec
	activeConnections prometheus.Gauge
	resourceReads     *prometheus.CounterVec
	resourceWrites    *prometheus.CounterVec
	resourceDeletes   *prometheus.CounterVec
	policyEvaluations prometheus.Counter
	policyApprovals   prometheus.Counter
	policyViolations  prometheus.Counter
	policyErrors      prometheus.Counter
	attestRequests    prometheus.Counter
	attestSuccesses   *prometheus.CounterVec
	attestFailures    *prometheus.CounterVec
	attestErrors      prometheus.Counter
	authRequests      prometheus.Counter
	authSuccesses     prometheus.Counter
	authErrors        prometheus.Counter
}

// NewMetrics creates the metrics; version labels kbs_build_info.
func NewMetrics(version string) *Metrics {
	r := prometheus.NewRegistry()
	m := &Metrics{registry: r}
	counter := func(name, help string) prometheus.Counter {
		c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
		r.MustRegister(c)
		return c
	}
	counterVec := func(name, help string, labels ...string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
		r.MustRegister(c)
		return c
	}
	histVec := func(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
		h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, labels)
		r.MustRegister(h)
		return h
	}
	build := prometheus.NewGauge(prometheus.GaugeOpts{Name: "kbs_build_info", Help: "Build information.",
		ConstLabels: prometheus.Labels{"version": version, "git_hash": "", "build_date": ""}})
	build.Set(1)
	r.MustRegister(build)
	m.httpRequests = counterVec("kbs_http_requests_total", "HTTP requests.", "method", "status")
	m.httpDuration = histVec("kbs_http_request_duration_seconds", "HTTP request duration.",
		[]float64{.0005, .001, .005, .01, .05, .5, 1}, "method")
	sizes := []float64{32, 128, 512, 2048, 8192}
	m.httpRequestSize = histVec("kbs_http_request_size_bytes", "HTTP request body sizes.", sizes, "method")
	m.httpResponseSize = histVec("kbs_http_response_size_bytes", "HTTP response body sizes.", sizes, "method")
	m.activeConnections = prometheus.NewGauge(prometheus.GaugeOpts{Name: "kbs_http_active_connections", Help: "Requests in flight."})
	r.MustRegister(m.activeConnections)
	m.resourceReads = counterVec("kbs_resource_reads_total", "Resources released.", "resource_path")
	m.resourceWrites = counterVec("kbs_resource_writes_total", "Resources written.", "resource_path")
	m.resourceDeletes = counterVec("kbs_resource_deletes_total", "Resources deleted.", "resource_path")
	m.policyEvaluations = counter("kbs_policy_evaluations_total", "Resource policy evaluations.")
	m.policyApprovals = counter("kbs_policy_approvals_total", "Resource policy approvals.")
	m.policyViolations = counter("kbs_policy_violations_total", "Resource policy denials.")
	m.policyErrors = counter("kbs_policy_errors_total", "Resource policy errors.")
	m.attestRequests = counter("kbs_attestation_requests_total", "Attestation requests.")
	m.attestSuccesses = counterVec("kbs_attestation_successes_total", "Successful attestations.", "tee_type")
	m.attestFailures = counterVec("kbs_attestation_failures_total", "Failed attestations.", "tee_type")
	m.attestErrors = counter("kbs_attestation_errors_total", "Attestation requests that failed before evaluation.")
	m.authRequests = counter("kbs_auth_requests_total", "Auth requests.")
	m.authSuccesses = counter("kbs_auth_successes_total", "Successful auth requests.")
	m.authErrors = counter("kbs_auth_errors_total", "Failed auth requests.")
	return m
}

// Registry returns the registry (for tests and embedding).
func (m *Metrics) Registry() *prometheus.Registry { return m.registry }

func (m *Metrics) serve(w http.ResponseWriter, r *http.Request) {
	promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{}).ServeHTTP(w, r)
}

func (m *Metrics) resourceWrite(method, path string) {
	switch method {
	case http.MethodPost:
		m.resourceWrites.WithLabelValues(path).Inc()
	case http.MethodDelete:
		m.resourceDeletes.WithLabelValues(path).Inc()
	}
}

// observe records one finished request under /kbs. Unlike Trustee (which
// records response sizes into the request histogram), each histogram gets
// its own size.
func (m *Metrics) observe(r *http.Request, status int, seconds float64, respBytes int) {
	if !strings.HasPrefix(r.URL.Path, "/kbs") {
		return
	}
	method := methodLabel(r.Method)
	m.httpRequests.WithLabelValues(method, strconv.Itoa(status)).Inc()
	m.httpDuration.WithLabelValues(method).Observe(seconds)
	reqSize := r.ContentLength
	if reqSize < 0 {
		reqSize = 0
	}
	m.httpRequestSize.WithLabelValues(method).Observe(float64(reqSize))
	m.httpResponseSize.WithLabelValues(method).Observe(float64(respBytes))
}

// methodLabel maps the request method onto a fixed label set: a client
// chooses the method string, and every distinct label value is a new time
// series held for the life of the process.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodHead, http.MethodOptions, http.MethodPatch:
		return m
	}
	return "OTHER"
}
