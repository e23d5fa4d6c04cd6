// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.19;

/// @title EnsRegistryStandIn: the read interface of the ENS registry (EIP-137) for the devnet.
/// @notice Records per node: owner and resolver. The root node (0x0) belongs to the deployer. The owner
///         of a node creates sub-nodes with `setSubnodeOwner(node, keccak256(label), owner)`
///         (sub-node = keccak256(node ++ labelhash), as in the real registry) and points a node at a
///         resolver with `setResolver`. `resolver(node)` is what clients read.
contract EnsRegistryStandIn {
    mapping(bytes32 => address) internal owners;
    mapping(bytes32 => address) internal resolvers;

    constructor() {
        owners[bytes32(0)] = msg.sender;
    }

    modifier onlyOwner(bytes32 node) {
        require(owners[node] == msg.sender, "not the node owner");
        _;
    }

    function setSubnodeOwner(bytes32 node, bytes32 label, address owner_) external onlyOwner(node) returns (bytes32) {
        bytes32 subnode = keccak256(abi.encodePacked(node, label));
        owners[subnode] = owner_;
        return subnode;
    }

    function setResolver(bytes32 node, address resolver_) external onlyOwner(node) {
        resolvers[node] = resolver_;
    }

    function owner(bytes32 node) external view returns (address) {
        return owners[node];
    }

    function resolver(bytes32 node) external view returns (address) {
        return resolvers[node];
    }
}
