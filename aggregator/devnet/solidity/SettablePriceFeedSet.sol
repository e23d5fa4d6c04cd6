// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.19;

import {SettablePriceFeed} from "./SettablePriceFeed.sol";

/// @title SettablePriceFeedSet: several SettablePriceFeeds deployed in one transaction, and several
///        answers moved in one transaction (one block, one `updatedAt` for all of them).
/// @notice The devnet's Aave V3 price sources: each feed is a full SettablePriceFeed (`decimals`,
///         `latestAnswer`, `latestRoundData`), created by this contract's constructor in the order
///         given and listed by `feeds()`. `setAnswers` calls `setAnswer` on each target (any
///         SettablePriceFeed, not only this set's). Anyone may call it: devnet only.
contract SettablePriceFeedSet {
    SettablePriceFeed[] internal created;

    error LengthMismatch(uint256 targets, uint256 answers);

    constructor(uint8 decimals_, string[] memory descriptions, int256[] memory answers) {
        if (descriptions.length != answers.length) revert LengthMismatch(descriptions.length, answers.length);
        for (uint256 i = 0; i < answers.length; i++) {
            created.push(new SettablePriceFeed(decimals_, descriptions[i], answers[i]));
        }
    }

    function feeds() external view returns (SettablePriceFeed[] memory) {
        return created;
    }

    function setAnswers(SettablePriceFeed[] calldata targets, int256[] calldata answers) external {
        if (targets.length != answers.length) revert LengthMismatch(targets.length, answers.length);
        for (uint256 i = 0; i < targets.length; i++) {
            targets[i].setAnswer(answers[i]);
        }
    }
}
