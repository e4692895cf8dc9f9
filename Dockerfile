# syntax=docker/dockerfile:1
#
# The headcount binary in an empty image: a static Go build (scripts/build-static,
# CGO off) copied into scratch with the CA bundle (for JWKS and webhook HTTPS), run
# as a non-root user. No HEALTHCHECK: liveness and readiness are the orchestrator's
# (GET /healthz, GET /readyz; see docs/operations.md and deploy/kubernetes/).
#
#   docker build --build-arg VERSION=v0.1.0 --build-arg COMMIT=$(git rev-parse HEAD) -t headcount .
#   docker run --rm -p 4000:4000 headcount           # one node, demo page on :4000

# The build stage: any image with Go 1.26 and a POSIX shell.
ARG GO_IMAGE=golang:1.26

FROM ${GO_IMAGE} AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=""
ARG COMMIT=""
RUN VERSION="$VERSION" COMMIT="$COMMIT" sh scripts/build-static /out/headcount \
 && /out/headcount version

FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/headcount /headcount
COPY LICENSE /LICENSE
# 65532 is the conventional "nonroot" uid/gid of minimal images; nothing is written to disk.
USER 65532:65532
# HTTP (WebSocket, API, metrics) on every interface of the container. Gossip stays on
# loopback until you set HEADCOUNT_BIND=0.0.0.0:7946 together with a gossip key
# (--gossip-key-file or HEADCOUNT_GOSSIP_KEY): a non-loopback bind without one is refused.
ENV HEADCOUNT_HTTP=0.0.0.0:4000
EXPOSE 4000/tcp 7946/tcp 7946/udp
ENTRYPOINT ["/headcount"]
CMD ["agent"]
