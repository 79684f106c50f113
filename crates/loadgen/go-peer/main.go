// The Go peer of the load generator: a mutating admission webhook written the way most
// injectors are (net/http, encoding/json, the pod decoded whole), doing what sidecar-kit's
// native mode does for the bundled log-shipper profile: decode the review, match the pod's
// labels, skip a pod already injected, and answer a JSON Patch that adds the sidecar as an
// init container with restartPolicy Always, its volumes, the app containers' mount and
// environment, and a status annotation. Standard library only.
//
//	go build -o go-peer . && ./go-peer -cert tls.crt -key tls.key -listen 127.0.0.1:0
//
// It prints "listening ADDRESS" on stderr once it accepts connections.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
)

const statusKey = "sidecar-kit.io/status"

type review struct {
	APIVersion string    `json:"apiVersion"`
	Kind       string    `json:"kind"`
	Request    *request  `json:"request,omitempty"`
	Response   *response `json:"response,omitempty"`
}

type request struct {
	UID       string         `json:"uid"`
	Operation string         `json:"operation"`
	Namespace string         `json:"namespace"`
	Object    map[string]any `json:"object"`
}

type response struct {
	UID       string  `json:"uid"`
	Allowed   bool    `json:"allowed"`
	PatchType *string `json:"patchType,omitempty"`
	Patch     []byte  `json:"patch,omitempty"`
}

type op struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value"`
}

// The profile's additions, as the bundled examples/profiles/log-shipper.yaml has them.
func sidecar() map[string]any {
	return map[string]any{
		"name":          "log-shipper",
		"image":         "registry.example.com/log-shipper:2.3.1",
		"command":       []any{"/usr/bin/log-shipper", "--config", "/etc/log-shipper/config.yaml"},
		"args":          []any{"--source", "/var/log/app"},
		"ports":         []any{map[string]any{"name": "metrics", "containerPort": 9100}},
		"restartPolicy": "Always",
		"startupProbe": map[string]any{
			"httpGet":          map[string]any{"path": "/ready", "port": "metrics"},
			"periodSeconds":    1,
			"failureThreshold": 30,
		},
		"readinessProbe": map[string]any{
			"httpGet":       map[string]any{"path": "/ready", "port": "metrics"},
			"periodSeconds": 5,
		},
		"resources": map[string]any{
			"requests": map[string]any{"cpu": "50m", "memory": "64Mi"},
			"limits":   map[string]any{"memory": "128Mi"},
		},
		"securityContext": map[string]any{
			"allowPrivilegeEscalation": false,
			"capabilities":             map[string]any{"drop": []any{"ALL"}},
			"runAsNonRoot":             true,
			"runAsUser":                10001,
			"seccompProfile":           map[string]any{"type": "RuntimeDefault"},
		},
		"volumeMounts": []any{
			map[string]any{"name": "app-logs", "mountPath": "/var/log/app", "readOnly": true},
			map[string]any{"name": "log-shipper-config", "mountPath": "/etc/log-shipper"},
		},
	}
}

func volumes() []any {
	return []any{
		map[string]any{"name": "app-logs", "emptyDir": map[string]any{}},
		map[string]any{"name": "log-shipper-config", "configMap": map[string]any{"name": "log-shipper"}},
	}
}

func field(m map[string]any, k string) map[string]any {
	v, _ := m[k].(map[string]any)
	return v
}

// The JSON Patch for a pod, or nil where nothing is injected.
func plan(pod map[string]any) []op {
	meta, spec := field(pod, "metadata"), field(pod, "spec")
	if spec == nil {
		return nil
	}
	labels := field(meta, "labels")
	if labels["logging"] != "shipped" {
		return nil
	}
	annotations := field(meta, "annotations")
	if _, done := annotations[statusKey]; done {
		return nil
	}
	var ops []op
	if init, _ := spec["initContainers"].([]any); len(init) > 0 {
		ops = append(ops, op{"add", "/spec/initContainers/0", sidecar()})
	} else {
		ops = append(ops, op{"add", "/spec/initContainers", []any{sidecar()}})
	}
	if vols, _ := spec["volumes"].([]any); len(vols) > 0 {
		for _, v := range volumes() {
			ops = append(ops, op{"add", "/spec/volumes/-", v})
		}
	} else {
		ops = append(ops, op{"add", "/spec/volumes", volumes()})
	}
	containers, _ := spec["containers"].([]any)
	for i, c := range containers {
		cm, _ := c.(map[string]any)
		mount := map[string]any{"name": "app-logs", "mountPath": "/var/log/app"}
		if m, _ := cm["volumeMounts"].([]any); len(m) > 0 {
			ops = append(ops, op{"add", fmt.Sprintf("/spec/containers/%d/volumeMounts/-", i), mount})
		} else {
			ops = append(ops, op{"add", fmt.Sprintf("/spec/containers/%d/volumeMounts", i), []any{mount}})
		}
		env := map[string]any{"name": "LOG_DIR", "value": "/var/log/app"}
		if e, _ := cm["env"].([]any); len(e) > 0 {
			ops = append(ops, op{"add", fmt.Sprintf("/spec/containers/%d/env/-", i), env})
		} else {
			ops = append(ops, op{"add", fmt.Sprintf("/spec/containers/%d/env", i), []any{env}})
		}
	}
	status, _ := json.Marshal(map[string]any{"v": 1, "injections": []any{map[string]any{
		"profile": "log-shipper", "mode": "native", "reason": "native requested",
		"added": map[string]any{"initContainers": []any{"log-shipper"}, "volumes": []any{"app-logs", "log-shipper-config"}},
	}}})
	if annotations == nil {
		ops = append(ops, op{"add", "/metadata/annotations", map[string]any{statusKey: string(status)}})
	} else {
		ops = append(ops, op{"add", "/metadata/annotations/sidecar-kit.io~1status", string(status)})
	}
	return ops
}

func mutate(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 6<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
		return
	}
	var in review
	if err := json.Unmarshal(body, &in); err != nil || in.Request == nil {
		http.Error(w, "not an AdmissionReview", http.StatusBadRequest)
		return
	}
	out := review{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview",
		Response: &response{UID: in.Request.UID, Allowed: true}}
	if in.Request.Operation == "CREATE" {
		if ops := plan(in.Request.Object); ops != nil {
			patch, err := json.Marshal(ops)
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			pt := "JSONPatch"
			out.Response.PatchType, out.Response.Patch = &pt, patch
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

func main() {
	cert := flag.String("cert", "tls.crt", "serving certificate (PEM)")
	key := flag.String("key", "tls.key", "its key (PEM)")
	listen := flag.String("listen", "127.0.0.1:8443", "address to listen on")
	flag.Parse()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/mutate", mutate)
	fmt.Fprintf(os.Stderr, "listening %s\n", ln.Addr())
	log.Fatal((&http.Server{Handler: mux}).ServeTLS(ln, *cert, *key))
}
