// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.19;

/// @title EnsResolverStandIn: a public resolver's `addr(bytes32)` (EIP-137, coin type 60) for the devnet.
/// @notice `setAddr` is open to anyone: devnet only (the real public resolver checks the node's owner).
contract EnsResolverStandIn {
    mapping(bytes32 => address) internal addrs;

    function setAddr(bytes32 node, address a) external {
        addrs[node] = a;
    }

    function addr(bytes32 node) external view returns (address) {
        return addrs[node];
    }
}
