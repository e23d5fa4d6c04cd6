// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.19;

/// @title GmxDataStoreStandIn: a STAND-IN for GMX v2's DataStore, uint values only.
/// @notice Serves `getUint(bytes32)` like gmx-synthetics' DataStore; the owner writes values with
///         `setUint`. Keys are derived as in gmx-synthetics Keys.sol, e.g.
///         keccak256(abi.encode(keccak256(abi.encode("MIN_COLLATERAL_FACTOR_FOR_LIQUIDATION")), market)).
///         The helpers below derive the keys the Reader stand-in reads. Devnet only.
contract GmxDataStoreStandIn {
    address public immutable owner;
    mapping(bytes32 => uint256) internal uintValues;

    error NotOwner();

    constructor(address owner_) {
        owner = owner_;
    }

    function getUint(bytes32 key) external view returns (uint256) {
        return uintValues[key];
    }

    function setUint(bytes32 key, uint256 value) external returns (uint256) {
        if (msg.sender != owner) revert NotOwner();
        uintValues[key] = value;
        return value;
    }

    // --- keys (Keys.sol) -----------------------------------------------------------------------

    function minCollateralUsdKey() public pure returns (bytes32) {
        return keccak256(abi.encode("MIN_COLLATERAL_USD"));
    }

    function minCollateralFactorKey(address market) public pure returns (bytes32) {
        return keccak256(abi.encode(keccak256(abi.encode("MIN_COLLATERAL_FACTOR")), market));
    }

    function minCollateralFactorForLiquidationKey(address market) public pure returns (bytes32) {
        return keccak256(abi.encode(keccak256(abi.encode("MIN_COLLATERAL_FACTOR_FOR_LIQUIDATION")), market));
    }

    function maxPositionImpactFactorForLiquidationsKey(address market) public pure returns (bytes32) {
        return keccak256(abi.encode(keccak256(abi.encode("MAX_POSITION_IMPACT_FACTOR_FOR_LIQUIDATIONS")), market));
    }

    function positionFeeFactorKey(address market, bool forPositiveImpact) public pure returns (bytes32) {
        return keccak256(abi.encode(keccak256(abi.encode("POSITION_FEE_FACTOR")), market, forPositiveImpact));
    }
}
