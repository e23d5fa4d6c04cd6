// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.19;

/// @title FeedGetterOracle: a Morpho Blue oracle whose price the devnet sets, and which names the
///        Chainlink-style feeds behind it with MorphoChainlinkOracleV2's getters.
/// @notice `price()` is exactly the value last given (constructor or `setPrice`), in Morpho's scale
///         (loan raw units per collateral raw unit x 1e36), as with morpho-blue's `OracleMock`; it is
///         NOT computed from the feeds. `BASE_FEED_1` / `QUOTE_FEED_1` are the feeds of the collateral
///         and loan token the devnet moves together with this price (zero address: none); the second
///         feeds and the ERC-4626 vaults are always the zero address. Anyone may set: devnet only.
contract FeedGetterOracle {
    address public immutable BASE_FEED_1;
    address public immutable QUOTE_FEED_1;
    address public constant BASE_FEED_2 = address(0);
    address public constant QUOTE_FEED_2 = address(0);
    address public constant BASE_VAULT = address(0);
    address public constant QUOTE_VAULT = address(0);
    uint256 public price;

    constructor(address baseFeed1, address quoteFeed1, uint256 price_) {
        BASE_FEED_1 = baseFeed1;
        QUOTE_FEED_1 = quoteFeed1;
        price = price_;
    }

    function setPrice(uint256 newPrice) external {
        price = newPrice;
    }
}
