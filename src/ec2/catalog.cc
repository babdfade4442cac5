#include "ec2/catalog.h"

#include <functional>

namespace autopipe {

const std::vector<std::string>& Catalog::KnownRegions() {
  static const std::vector<std::string> kRegions = {
      "us-east-1",      "us-east-2",      "us-west-1",    "us-west-2",    "ca-central-1",
      "eu-west-1",      "eu-west-2",      "eu-west-3",    "eu-central-1", "eu-north-1",
      "ap-northeast-1", "ap-northeast-2", "ap-northeast-3", "ap-southeast-1", "ap-southeast-2",
      "ap-south-1",     "sa-east-1"};
  return kRegions;
}

std::string Catalog::DefaultAddressBlock(const std::string& region) {
  const auto& known = KnownRegions();
  for (size_t i = 0; i < known.size(); ++i) {
    if (known[i] == region) return "127." + std::to_string(100 + i);
  }
  return "127." + std::to_string(60 + std::hash<std::string>{}(region) % 40);
}

Catalog::Catalog(std::string region, std::string address_block)
    : region_(std::move(region)), address_block_(std::move(address_block)) {
  for (char suffix : {'a', 'b', 'c'}) azs_.push_back(region_ + suffix);
  images_ = {
      {"ami-0a1b2c3d4e5f60718", "autopipe-sample-web",
       "Auto_Pipeline sample web service on the instance's private IP, port 80; runs UserData at boot",
       "sample-app"},
      {"ami-0f1e2d3c4b5a69788", "autopipe-minimal",
       "Runs only the UserData boot script; the instance lives as long as its process tree", ""},
  };
  types_ = {
      {"t2.nano", 1, 512},      {"t2.micro", 1, 1024},    {"t2.small", 1, 2048},    {"t2.medium", 2, 4096},
      {"t3.nano", 2, 512},      {"t3.micro", 2, 1024},    {"t3.small", 2, 2048},    {"t3.medium", 2, 4096},
      {"t3.large", 2, 8192},    {"t3.xlarge", 4, 16384},  {"m5.large", 2, 8192},    {"m5.xlarge", 4, 16384},
      {"m5.2xlarge", 8, 32768}, {"c5.large", 2, 4096},    {"c5.xlarge", 4, 8192},   {"r5.large", 2, 16384},
  };
}

bool Catalog::IsAvailabilityZone(const std::string& az) const { return AzIndex(az) >= 0; }

int Catalog::AzIndex(const std::string& az) const {
  for (size_t i = 0; i < azs_.size(); ++i) {
    if (azs_[i] == az) return static_cast<int>(i);
  }
  return -1;
}

std::string Catalog::ZoneId(const std::string& az) const {
  std::string prefix;
  // us-west-2 -> usw2: first two letters of the area, first letter of each further word, the number.
  size_t dash1 = region_.find('-'), dash2 = region_.rfind('-');
  prefix = region_.substr(0, 2);
  if (dash1 != std::string::npos && dash2 != std::string::npos && dash2 > dash1) {
    prefix += region_[dash1 + 1];
    prefix += region_.substr(dash2 + 1);
  }
  return prefix + "-az" + std::to_string(AzIndex(az) + 1);
}

const Image* Catalog::FindImage(const std::string& image_id) const {
  for (const auto& i : images_) {
    if (i.image_id == image_id) return &i;
  }
  return nullptr;
}

const InstanceType* Catalog::FindInstanceType(const std::string& name) const {
  for (const auto& t : types_) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

}  // namespace autopipe
