// The fixed facts of a region: its name, account, availability zones, the regions it knows of, the built-in
// images and the instance types with their vCPU counts.
//
// Thread-safety: immutable after construction.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace autopipe {

inline constexpr char kAccountId[] = "123456789012";

struct Image {
  std::string image_id;
  std::string name;
  std::string description;
  std::string service;  // what the image's init starts: "sample-app" or "" (UserData only)
};

struct InstanceType {
  std::string name;
  int vcpus;
  int memory_mib;
};

class Catalog {
 public:
  // `address_block` is "127.N": the /16 this region's private addresses come from.
  Catalog(std::string region, std::string address_block);

  const std::string& region() const { return region_; }
  const std::string& address_block() const { return address_block_; }
  const std::vector<std::string>& availability_zones() const { return azs_; }
  bool IsAvailabilityZone(const std::string& az) const;
  int AzIndex(const std::string& az) const;  // -1 when unknown
  std::string ZoneId(const std::string& az) const;  // usw2-az1

  const std::vector<Image>& images() const { return images_; }
  const Image* FindImage(const std::string& image_id) const;
  const InstanceType* FindInstanceType(const std::string& name) const;
  const std::vector<InstanceType>& instance_types() const { return types_; }

  // Regions this build knows, in AWS's order.
  static const std::vector<std::string>& KnownRegions();
  // The default 127.N block for a region: 127.100+index for known regions, else 127.60..99 by hash.
  static std::string DefaultAddressBlock(const std::string& region);

 private:
  std::string region_;
  std::string address_block_;
  std::vector<std::string> azs_;
  std::vector<Image> images_;
  std::vector<InstanceType> types_;
};

}  // namespace autopipe
