// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.19;

/// @title SettablePriceFeed: a Chainlink-style aggregator whose answer the devnet sets.
/// @notice Serves `decimals()` and `latestRoundData()` like an AggregatorV3 feed. `setAnswer` starts a
///         new round stamped with the block time. Anyone may call it: devnet only.
contract SettablePriceFeed {
    uint8 public immutable decimals;
    string public description;
    uint80 internal roundId;
    int256 internal answer;
    uint256 internal updatedAt;

    constructor(uint8 decimals_, string memory description_, int256 answer_) {
        decimals = decimals_;
        description = description_;
        _set(answer_);
    }

    function setAnswer(int256 answer_) external {
        _set(answer_);
    }

    function latestAnswer() external view returns (int256) {
        return answer;
    }

    function latestRoundData() external view returns (uint80, int256, uint256, uint256, uint80) {
        return (roundId, answer, updatedAt, updatedAt, roundId);
    }

    function _set(int256 answer_) internal {
        roundId += 1;
        answer = answer_;
        updatedAt = block.timestamp;
    }
}
