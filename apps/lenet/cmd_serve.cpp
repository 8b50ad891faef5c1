// `lenet serve DIR`: a small static file server on 127.0.0.1 for the page
// `lenet export --web` writes (browsers refuse WebAssembly from file://).
// HTTP/1.0, GET and HEAD, one thread per connection, files under DIR only.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <thread>

#include "commands.h"
#include "lenet/fileio.h"
#include "lenet/web.h"

namespace lenet::cli {

namespace fs = std::filesystem;

namespace {

void send_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n <= 0) return;  // the client went away
    bytes.remove_prefix(static_cast<size_t>(n));
  }
}

void respond(int fd, int code, const char* reason, const std::string& type, std::string_view body, bool head) {
  const std::string header = "HTTP/1.0 " + std::to_string(code) + " " + reason + "\r\nContent-Type: " + type +
                             "\r\nContent-Length: " + std::to_string(body.size()) +
                             "\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n";
  send_all(fd, header);
  if (!head) send_all(fd, body);
}

// "%41" → "A"; false on a malformed escape.
bool percent_decode(const std::string& in, std::string& out) {
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out += in[i];
      continue;
    }
    if (i + 2 >= in.size() || !std::isxdigit(static_cast<unsigned char>(in[i + 1])) ||
        !std::isxdigit(static_cast<unsigned char>(in[i + 2])))
      return false;
    out += static_cast<char>(std::stoi(in.substr(i + 1, 2), nullptr, 16));
    i += 2;
  }
  return true;
}

void serve_one(int fd, const fs::path& root) {
  std::string request;
  char buf[4096];
  while (request.find("\r\n\r\n") == std::string::npos && request.size() < 16384) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    request.append(buf, static_cast<size_t>(n));
  }
  const size_t sp1 = request.find(' '), sp2 = request.find(' ', sp1 + 1);
  if (sp1 == std::string::npos || sp2 == std::string::npos) return;
  const std::string method = request.substr(0, sp1);
  std::string target = request.substr(sp1 + 1, sp2 - sp1 - 1);
  const bool head = method == "HEAD";
  const std::string text = "text/plain; charset=utf-8";
  if (method != "GET" && !head) return respond(fd, 405, "Method Not Allowed", text, "GET or HEAD only\n", false);
  target = target.substr(0, target.find_first_of("?#"));
  std::string path;
  if (target.empty() || target[0] != '/' || !percent_decode(target, path) || path.find('\0') != std::string::npos)
    return respond(fd, 400, "Bad Request", text, "bad request path\n", head);
  // No way out of the folder: every ".." segment is refused, hidden files too.
  for (const auto& part : fs::path(path).relative_path())
    if (part == ".." || part.string().starts_with(".")) return respond(fd, 404, "Not Found", text, "not found\n", head);
  fs::path file = root / fs::path(path).relative_path();
  std::error_code ec;
  if (fs::is_directory(file, ec)) file /= "index.html";
  if (!fs::is_regular_file(file, ec)) return respond(fd, 404, "Not Found", text, "not found\n", head);
  std::string body;
  try {
    body = read_file(file);
  } catch (const std::exception&) {
    return respond(fd, 403, "Forbidden", text, "cannot read the file\n", head);
  }
  respond(fd, 200, "OK", web_content_type(file), body, head);
}

[[noreturn]] void serve(const fs::path& root, int port) {
  std::error_code ec;
  if (!fs::is_directory(root, ec)) throw UsageError(root.string() + ": no such folder");
  if (!fs::is_regular_file(root / "index.html", ec))
    throw UsageError(root.string() + " holds no index.html (write one with lenet export --model M --web " +
                     root.string() + ")");
  const int server = ::socket(AF_INET, SOCK_STREAM, 0);
  if (server < 0) throw std::runtime_error(std::string("cannot open a socket: ") + std::strerror(errno));
  const int yes = 1;
  ::setsockopt(server, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);  // this machine only
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (::bind(server, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(server, 64) != 0)
    throw std::runtime_error("cannot listen on 127.0.0.1:" + std::to_string(port) + ": " + std::strerror(errno));
  socklen_t len = sizeof addr;
  ::getsockname(server, reinterpret_cast<sockaddr*>(&addr), &len);
  // The tests read the port from this line (--port 0 picks a free one).
  std::printf("serving %s at http://127.0.0.1:%d/ (Ctrl-C stops)\n", root.string().c_str(), ntohs(addr.sin_port));
  std::fflush(stdout);
  for (;;) {
    const int fd = ::accept(server, nullptr, nullptr);
    if (fd < 0) continue;
    // A browser may open a connection and send nothing for a while: give up on it after 10 s.
    timeval timeout{10, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    std::thread([fd, root] {
      try {
        serve_one(fd, root);
      } catch (const std::exception&) {
      }
      ::close(fd);
    }).detach();
  }
}

}  // namespace

void add_serve_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("serve", "Serve a folder written by `lenet export --web` on http://127.0.0.1");
  auto dir = std::make_shared<std::string>();
  auto port = std::make_shared<int>(8000);
  cmd->add_option("DIR", *dir, "The page's folder")->required();
  cmd->add_option("--port", *port, "TCP port on 127.0.0.1 (0: any free one)")->capture_default_str();
  cmd->callback([=] {
    if (*port < 0 || *port > 65535) throw UsageError("--port must be 0..65535, got " + std::to_string(*port));
    serve(fs::absolute(*dir), *port);
  });
}

}  // namespace lenet::cli
