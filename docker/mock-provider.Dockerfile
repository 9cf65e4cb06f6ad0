# syntax=docker/dockerfile:1
# The mock OpenAI-compatible provider (tools/mock-provider) as a container, for docker-compose.yml.
#   docker build -f docker/mock-provider.Dockerfile -t ai-gateway/mock-provider .
# Build context: the repository root (docker/mock-provider.Dockerfile.dockerignore trims it).
FROM rust:1.95.0-slim-bookworm AS build
WORKDIR /src
# Use the image's toolchain as is: rust-toolchain.toml would make rustup fetch the wasm target
# and components, which the mock doesn't need.
ENV RUSTUP_TOOLCHAIN=1.95.0 CARGO_TERM_COLOR=never
COPY . .
RUN cargo build --release --locked -p mock-provider \
 && cp target/release/mock-provider /mock-provider

FROM debian:bookworm-slim
COPY --from=build /mock-provider /usr/local/bin/mock-provider
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/mock-provider"]
CMD ["--listen", "0.0.0.0:8080", "--name", "mock", "--threads", "2"]
