// The region's default VPC as EC2 shows it: one VPC over the region's address block, one default subnet per
// availability zone over that zone's part of the block (the /18 that AllocatePrivateAddress hands addresses out
// of), and security groups (the VPC's `default` group plus the ones users create, with their rules).
//
// Every address here is a real loopback address: the VPC's CIDR is the region's 127.N.0.0/16 and a subnet's CIDR
// is the /18 its instances, DB servers and cache nodes really get their addresses from. The VPC and subnets are
// derived from the catalog (stable ids, nothing stored); security groups are `security_group` documents, and the
// default group is stored the first time a rule of it changes.
//
// Security groups are recorded and returned, not enforced: every process of the region shares the loopback
// interface, and nothing filters traffic between them (docs/design.md, "Default VPC").
//
// Thread-safety: the writing operations run under RegionContext::mu (held by the router); the others only read.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "api/api_server.h"
#include "ec2/catalog.h"
#include "region/context.h"

namespace autopipe {

namespace kind {
inline constexpr char kSecurityGroup[] = "security_group";
}  // namespace kind

namespace ec2 {

std::string DefaultVpcId(const Catalog& catalog);
std::string DefaultVpcCidr(const Catalog& catalog);
// The default subnet of `az` (which must be one of the catalog's zones), and its CIDR.
std::string DefaultSubnetId(const Catalog& catalog, const std::string& az);
std::string SubnetCidr(const Catalog& catalog, const std::string& az);
// The zone a subnet id belongs to; nullopt for an id that is no subnet of this region.
std::optional<std::string> SubnetZone(const Catalog& catalog, const std::string& subnet_id);
std::string DefaultSecurityGroupId(const Catalog& catalog);
// EC2's private DNS name of an address: ip-a-b-c-d.<region>.compute.internal (ec2.internal in us-east-1).
std::string PrivateDnsName(const Catalog& catalog, const std::string& ip);

// The primary network interface of a live instance (DescribeNetworkInterfaces' shape; DescribeInstances shows it
// in networkInterfaceSet), and the id of its root volume: stable ids derived from the instance id.
Json NetworkInterfaceOf(const RegionContext& ctx, const Json& instance);
std::string RootVolumeId(const std::string& instance_id);

// The VPC operations of the ec2 API (Ec2Api adds them to its table): DescribeVpcs, DescribeSubnets,
// DescribeSecurityGroups, CreateSecurityGroup, DeleteSecurityGroup, Authorize/RevokeSecurityGroupIngress,
// Authorize/RevokeSecurityGroupEgress, DescribeAccountAttributes, DescribeNetworkInterfaces,
// DescribeInstanceTypes.
std::vector<Operation> VpcOperations(RegionContext* ctx);

}  // namespace ec2
}  // namespace autopipe
